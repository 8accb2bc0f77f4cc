"""Sans-IO AMQP 1.0: types, frames, performatives, messages and the connection state machine."""
