-- Ratio metrics: per unit, the sum of one event's values over the sum of another's (revenue
-- per order); the unit stays what was randomised, so results use delta-method variances.
alter table metrics
  drop constraint metrics_kind_check,
  add constraint metrics_kind_check check (kind in ('conversion', 'continuous', 'ratio')),
  add column numerator text check (numerator is null or numerator ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  add column denominator text check (denominator is null or denominator ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  add constraint metrics_ratio_parts check (
    (kind = 'ratio') = (numerator is not null and denominator is not null)
    and (numerator is null) = (denominator is null));
