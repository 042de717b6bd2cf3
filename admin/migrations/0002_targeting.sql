-- Targeting, identity and QA: reusable audiences, per-environment settings (holdout, bot
-- policy, context schema), fallback units, prerequisites and per-variant allow-lists.

create table audiences (
  id uuid primary key default gen_random_uuid(),
  key cleave_key not null unique,
  name text not null default '',
  description text not null default '',
  -- rules OR-ed, as an experiment's targeting; audiences do not reference audiences
  targeting jsonb not null default '[]',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- {"holdout": {...} | null, "botPolicy": "exclude" | "control" | "include", "contextSchema": [...]}
alter table environments add column settings jsonb not null default '{}';

alter table experiments
  add column fallback_unit cleave_key,
  add column prerequisites jsonb not null default '[]';

alter table variants add column allow jsonb not null default '[]';
