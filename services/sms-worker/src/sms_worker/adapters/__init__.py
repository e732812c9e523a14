"""The sms-worker's way out to the SMS gateway."""
