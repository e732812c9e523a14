"""RabbitMQ messaging: topology, publishing, consuming, outbox and inbox."""
