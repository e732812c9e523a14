"""The company administrator's part of the portal: employees, their numbers and self-service, and
the audit log of every change made to them."""
