-- Phases: an experiment run again under a new salt is a new phase, with exposures and results
-- of its own (exposures already carry the salt they were drawn with). Phase 1 is recorded
-- when phase 2 starts; an experiment without rows has had one phase, under its salt.
create table experiment_phases (
  experiment_id uuid not null references experiments(id),
  number integer not null check (number >= 1),
  salt text not null check (salt <> '' and length(salt) <= 256),
  started_at timestamptz not null default now(),
  primary key (experiment_id, number),
  unique (experiment_id, salt)
);
