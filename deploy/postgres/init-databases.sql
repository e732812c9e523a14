-- One database per service, each owned by its own login role, so that no service can read or
-- write another's tables (DESIGN section 3: "no other service writes them").
-- The postgres image runs this once, on an empty data directory (/docker-entrypoint-initdb.d).
-- The passwords are for the local demo in deploy/compose.yaml only; in production the
-- databases come from a managed PostgreSQL or an operator (see deploy/README.md).

CREATE ROLE portal_api LOGIN PASSWORD 'portal_api';
CREATE DATABASE portal_api OWNER portal_api;
REVOKE ALL ON DATABASE portal_api FROM PUBLIC;

CREATE ROLE order_worker LOGIN PASSWORD 'order_worker';
CREATE DATABASE order_worker OWNER order_worker;
REVOKE ALL ON DATABASE order_worker FROM PUBLIC;

CREATE ROLE sms_worker LOGIN PASSWORD 'sms_worker';
CREATE DATABASE sms_worker OWNER sms_worker;
REVOKE ALL ON DATABASE sms_worker FROM PUBLIC;

CREATE ROLE payroll_worker LOGIN PASSWORD 'payroll_worker';
CREATE DATABASE payroll_worker OWNER payroll_worker;
REVOKE ALL ON DATABASE payroll_worker FROM PUBLIC;
