-- Where and on what each exposure was served (the edge's cf.country, ua.device, ua.browser),
-- kept with the earliest exposure of a unit's day like its source, so results can be sliced
-- by the dimension a unit was first seen in. Null for records that did not say.
alter table exposures
  add column country text check (country is null or length(country) between 1 and 32),
  add column device text check (device is null or length(device) between 1 and 32),
  add column browser text check (browser is null or length(browser) between 1 and 32);
