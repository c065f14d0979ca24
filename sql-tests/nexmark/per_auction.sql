-- Not a Nexmark query: a per-auction aggregate without windows, whose keyed state grows
-- with every new auction (the aggregate view of docs/checkpoints.md), for measuring the
-- cost of checkpoints on unbounded keyed state.
CREATE SINK per_auction AS
SELECT auction, count(*) AS bids, max(price) AS top, sum(price) AS total FROM bid GROUP BY auction
WITH (connector = 'blackhole');
