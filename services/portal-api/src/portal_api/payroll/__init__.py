"""Salary deductions in the portal: the read model of the payroll-worker's lines (Mine lønnstrekk,
the administrator's Lønnstrekk) and the administrator's period close and exports, which the
payroll-worker's internal HTTP API does."""
