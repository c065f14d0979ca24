-- The Nexmark generator's bids: 10,000 events per simulated second, watermark 4 s behind.
CREATE SOURCE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
  date_time TIMESTAMP, extra VARCHAR,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (
  connector = 'nexmark',
  nexmark.table.type = 'Bid',
  nexmark.event.num = '__EVENTS__',
  nexmark.split.num = '__SPLITS__'
);
