-- Nexmark q7 (aggregate part): the highest price and the number of bids per 10 s window.
CREATE SINK q7 AS
SELECT window_start, window_end, max(price) AS maxprice, count(*) AS num
FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end
EMIT ON WINDOW CLOSE
WITH (connector = 'blackhole');
