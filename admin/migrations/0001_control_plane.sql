-- cleave control plane: environments, experiments and their variants, allocations and layers,
-- published snapshots, and an append-only audit log. Never edit an applied migration; add one.

create extension if not exists btree_gist;

create domain cleave_key as text
  check (value ~ '^[a-z][a-z0-9_.-]{0,63}$');

create table environments (
  id uuid primary key default gen_random_uuid(),
  name cleave_key not null unique,
  -- version the KV pointer names; null until the first publish
  current_version bigint,
  created_at timestamptz not null default now()
);

create table layers (
  id uuid primary key default gen_random_uuid(),
  environment_id uuid not null references environments(id),
  key cleave_key not null,
  salt text not null check (salt <> ''),
  unique (environment_id, key)
);

create table experiments (
  id uuid primary key default gen_random_uuid(),
  environment_id uuid not null references environments(id),
  key cleave_key not null,
  name text not null default '',
  description text not null default '',
  unit cleave_key not null default 'user',
  salt text not null check (salt <> '' and length(salt) <= 256),
  status text not null default 'DRAFT'
    check (status in ('DRAFT', 'RUNNING', 'PAUSED', 'STOPPED', 'ARCHIVED')),
  traffic integer not null default 10000 check (traffic between 0 and 10000),
  -- list of rules as cleave-core `Rule` JSON
  targeting jsonb not null default '[]' check (jsonb_typeof(targeting) = 'array'),
  layer_id uuid references layers(id),
  -- inclusive [start, end] slices of the layer's bucket space
  layer_ranges jsonb not null default '[]' check (jsonb_typeof(layer_ranges) = 'array'),
  start_at timestamptz,
  end_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (environment_id, key),
  check (start_at is null or end_at is null or start_at < end_at)
);
create index experiments_environment on experiments (environment_id, status);

create table variants (
  id uuid primary key default gen_random_uuid(),
  experiment_id uuid not null references experiments(id),
  key cleave_key not null,
  name text not null default '',
  payload jsonb not null default 'null',
  created_at timestamptz not null default now(),
  unique (experiment_id, key)
);

create table allocations (
  id bigserial primary key,
  experiment_id uuid not null references experiments(id),
  variant_id uuid not null references variants(id),
  range_start integer not null check (range_start between 0 and 9999),
  range_end integer not null check (range_end between 0 and 9999),
  check (range_start <= range_end),
  -- no bucket belongs to two ranges of one experiment
  exclude using gist (experiment_id with =, int4range(range_start, range_end, '[]') with &&)
);
create index allocations_experiment on allocations (experiment_id);

create table snapshots (
  environment_id uuid not null references environments(id),
  version bigint not null check (version >= 1),
  sha256 text not null,
  -- the exact bytes uploaded
  body text not null,
  published_at timestamptz not null,
  published_by text not null,
  primary key (environment_id, version)
);

create table audit_log (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  entity text not null,
  entity_id text not null,
  before jsonb,
  after jsonb
);
create index audit_log_entity on audit_log (entity, entity_id);

-- The audit log is append-only.
create function audit_log_is_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only';
end $$;
create trigger audit_log_no_update before update or delete on audit_log
  for each statement execute function audit_log_is_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
  for each statement execute function audit_log_is_append_only();
