-- The audit log becomes a hash chain: each entry stores the hash of the one before and its
-- own hash over that and its content, so an edited or deleted row breaks the chain
-- (`cleave-admin audit verify`). Entries written before this migration stay unchained.

alter table audit_log add column prev_hash bytea, add column hash bytea;

-- One definition of an entry's hash, used to write and to verify. The content is a jsonb
-- array, whose text form is canonical; time counts in microseconds since the epoch, so the
-- session's time zone cannot change it.
create function audit_entry_hash(
  prev bytea, id bigint, at timestamptz, actor text, action text, entity text,
  entity_id text, before jsonb, after jsonb
) returns bytea language sql stable as $$
  select sha256(coalesce(prev, ''::bytea) || convert_to(jsonb_build_array(
    id, floor(extract(epoch from at) * 1000000)::bigint, actor, action, entity, entity_id,
    before, after
  )::text, 'UTF8'))
$$;

-- A second entry claiming the same predecessor would fork the chain.
create unique index audit_log_one_successor on audit_log (prev_hash);
