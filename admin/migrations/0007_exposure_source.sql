-- How the edge learned a unit saw its variant (api, confirmed, proxy_declared,
-- proxy_implicit); null for records from workers that did not say. Kept with the earliest
-- exposure of a unit's day, so results can say what each unit's first exposure rests on.
alter table exposures add column source text
  check (source in ('api', 'confirmed', 'proxy_declared', 'proxy_implicit'));
