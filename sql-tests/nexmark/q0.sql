-- Nexmark q0: pass-through.
CREATE SINK q0 AS
SELECT auction, bidder, price, channel, url, date_time, extra FROM bid
WITH (connector = 'blackhole');
