-- Edge request routing: experiments scoped to URL patterns, variants that route requests
-- (another origin from the environment's allow-list, a rewritten path, or a redirect).

-- {"include": ["host/path*", ...], "exclude": [...]}; null applies everywhere
alter table experiments
  add column routes jsonb check (routes is null or jsonb_typeof(routes) = 'object'),
  add column route_all_methods boolean not null default false;

-- {"origin": name, "rewrite": "/path"} or {"redirect": target, "status": 302 | 307}
alter table variants
  add column route jsonb check (route is null or jsonb_typeof(route) = 'object');
