-- Nexmark q11: bids per user session (a session ends after 10 s without a bid).
CREATE SINK q11 AS
SELECT bidder, count(*) AS bid_count, window_start, window_end
FROM SESSION(bid, date_time, INTERVAL '10' SECOND, bidder)
GROUP BY bidder, window_start, window_end
EMIT ON WINDOW CLOSE
WITH (connector = 'blackhole');
