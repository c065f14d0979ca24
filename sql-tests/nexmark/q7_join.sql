-- Nexmark q7 in its standard form: the highest bid of each 10 s window, joined back to the
-- bids to find who placed it (q7.sql is the aggregate half alone).
CREATE SINK q7_join AS
SELECT B.auction, B.price, B.bidder, B.date_time, B.extra
FROM bid B
JOIN (
  SELECT MAX(price) AS maxprice, window_end AS date_time
  FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
  GROUP BY window_start, window_end
) B1 ON B.price = B1.maxprice
WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time
WITH (connector = 'blackhole');
