-- Closing the loop: metric definitions, which metrics each experiment is judged on, and the
-- exposures and custom events the edge reports. Exposures and events are keyed by their
-- deterministic ids, so a redelivered batch stores nothing twice.

create table metrics (
  id uuid primary key default gen_random_uuid(),
  key cleave_key not null unique,
  name text not null default '',
  description text not null default '',
  -- conversion: did the unit do it at least once (0/1); continuous: sum of event values
  kind text not null check (kind in ('conversion', 'continuous')),
  -- which way is good
  direction text not null check (direction in ('increase', 'decrease')),
  created_at timestamptz not null default now()
);

create table experiment_metrics (
  experiment_id uuid not null references experiments(id),
  metric_id uuid not null references metrics(id),
  role text not null check (role in ('primary', 'secondary', 'guardrail')),
  primary key (experiment_id, metric_id)
);

create table exposures (
  id text primary key check (id ~ '^[0-9a-f]{32}$'),
  environment_id uuid not null references environments(id),
  experiment text not null,
  variant text not null,
  unit_type text not null,
  unit text not null,
  salt text not null,
  day date not null,
  exposed_at timestamptz not null,
  -- forced, allow_listed or bot: stored for inspection, kept out of results
  excluded text check (excluded in ('forced', 'allow_listed', 'bot')),
  received_at timestamptz not null default now()
);
create index exposures_experiment on exposures (environment_id, experiment, salt, unit);

create table events (
  environment_id uuid not null references environments(id),
  event_id text not null,
  unit text not null,
  metric text not null,
  value double precision not null,
  occurred_at timestamptz not null,
  received_at timestamptz not null default now(),
  primary key (environment_id, event_id)
);
create index events_metric_unit on events (environment_id, metric, unit);
