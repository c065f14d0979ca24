-- Nexmark q3, local item suggestion: sellers in OR, ID or CA of category-10 auctions
-- (a regular inner join; state: every auction and person).
CREATE SINK q3 AS
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
WITH (connector = 'blackhole');
