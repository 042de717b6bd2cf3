-- Feature flags, one key space with the environment's experiments. `spec` holds the flag's
-- type, variants, off variant, rules and fallthrough as the REST API shows them; publishing
-- compiles it into the snapshot's `flags`. Archived flags are kept for the audit trail and
-- leave the next snapshot.
create table flags (
  id uuid primary key default gen_random_uuid(),
  environment_id uuid not null references environments(id),
  key cleave_key not null,
  name text not null default '',
  description text not null default '',
  spec jsonb not null check (jsonb_typeof(spec) = 'object'),
  archived boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One live flag per key and environment; an archived key may be used again.
create unique index flags_live_key on flags (environment_id, key) where not archived;
