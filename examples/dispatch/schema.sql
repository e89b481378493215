-- Pickup requests: riders insert them on the publisher, the dispatcher marks
-- them dispatched, and both reach the subscriber by logical replication.
-- The same DDL the dispatcher runs at start (crates/dispatcher/src/lib.rs,
-- SCHEMA), so either may come first.
create table if not exists pickups (
    id bigserial primary key,
    rider text not null,
    requested_at timestamptz not null default now(),
    dispatched_at timestamptz,
    dispatched_by text
);
