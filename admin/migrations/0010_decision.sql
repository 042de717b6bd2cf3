-- Which reading decides an experiment's verdicts: the always-valid sequential test (the
-- default) or the Bayesian chance to beat control. An analysis setting only: it never enters
-- a snapshot, so changing it publishes nothing.
alter table experiments
  add column decision text not null default 'sequential'
  check (decision in ('sequential', 'bayesian'));
