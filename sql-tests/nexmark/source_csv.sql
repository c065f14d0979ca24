-- Bids from a headerless CSV file (../shared/peers/flink/gen_bids.py writes one).
CREATE SOURCE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
  date_time TIMESTAMP, extra VARCHAR,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = '__BIDS_CSV__', format = 'csv', header = 'false');
