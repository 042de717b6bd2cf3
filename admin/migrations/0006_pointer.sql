-- The pointer last written for each environment, signature and expiry included, so the admin
-- can re-sign its expiry without reading the pointer back from KV.
alter table environments add column pointer jsonb;
