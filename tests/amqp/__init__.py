"""AMQP 1.0 protocol, transport and AmqpServer tests."""
