# ruff: noqa: C408  (the seed's examples build payloads with dict(...); kept verbatim)
"""Seed 002, "Testing": the TestClient examples against `myapp/app.py`, verbatim.

The only change to the examples is the import of the user's module (`from myapp.app import`
becomes a relative import of tests/seeds/myapp). Extra assertions after the examples check the
documented TestMessage fields and filters.
"""

from repid import InMemoryServer, Repid, TestClient

from .myapp.app import actor_with_args, app, router

# --- Using the TestClient (tests/test_app.py) ---------------------------------------------


async def test_actor_processing() -> None:
    # 1. Initialize the TestClient using your app as the parameter
    async with TestClient(app) as client:
        # 2. Send a message to the channel
        await client.send_message_json(
            channel="user_messages",
            payload=dict(user_id=123, user_name="Alex", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )
        # 3. By default (auto_process=True), the client instantly processes messages.
        # Let's verify the processed messages.
        processed = client.get_processed_messages()
        assert len(processed) == 1
        assert processed[0].success is True
        assert processed[0].result == ["Hi Alex! Your id is: 123."]

        # Added: the documented lifecycle fields and filters.
        assert processed[0].acked is True
        assert processed[0].nacked is False
        assert processed[0].rejected is False
        assert processed[0].exception is None
        assert len(client.get_sent_messages()) == 1
        assert len(client.get_sent_messages(channel="user_messages")) == 1
        assert client.get_sent_messages(channel="other") == []
        assert len(client.get_processed_messages(channel="user_messages")) == 1


# --- Manual Message Processing ------------------------------------------------------------


async def test_manual_processing() -> None:
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(
            channel="user_messages",
            payload=dict(user_id=123, user_name="Alex", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )

        # The message is in the queue, but hasn't been processed yet
        assert len(client.get_processed_messages()) == 0

        # Process the next message in the queue
        msg = await client.process_next()
        assert msg is not None
        assert msg.success is True
        assert msg.result == ["Hi Alex! Your id is: 123."]

        # Added: nothing left to process.
        assert await client.process_next() is None
        assert len(client.get_processed_messages()) == 1


# --- Inspecting Messages ------------------------------------------------------------------


async def test_inspecting_messages() -> None:
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(
            channel="user_messages",
            payload=dict(user_id=7, user_name="Bo", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )
        # The seed's snippet, with its placeholder result `["..."]` filled in.
        msg = await client.process_next()
        assert msg.acked is True  # Was it acknowledged?
        assert msg.nacked is False  # Was it NACKed?
        assert msg.rejected is False  # Was it rejected?
        assert msg.exception is None  # Did it raise an exception?
        assert msg.result == ["Hi Bo! Your id is: 7."]  # The return value of the actor


async def test_inspecting_a_failed_message() -> None:
    # Added: a payload that does not parse never reaches the actor and is nacked (auto mode).
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="user_messages",
            payload=dict(user_id="not a number", user_name="Alex", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )
        (msg,) = client.get_processed_messages()
        assert msg.success is False
        assert msg.nacked is True
        assert msg.acked is False
        assert msg.exception is not None


def _fresh_app() -> Repid:
    # Added tests that register things use their own app around myapp's router, so the
    # shared `app` stays as the seed defines it.
    fresh = Repid(title="My App")
    fresh.include_router(router)
    return fresh


async def test_filters_by_operation_id() -> None:
    # Added: get_sent_messages / get_processed_messages accept operation_id=.
    app = _fresh_app()
    app.messages.register_operation(operation_id="greet_user", channel="user_messages")
    async with TestClient(app) as client:
        await client.send_message_json(
            operation_id="greet_user",
            payload=dict(user_id=1, user_name="Cy", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )
        assert [m.channel for m in client.get_sent_messages(operation_id="greet_user")] == [
            "user_messages"
        ]
        (done,) = client.get_processed_messages(operation_id="greet_user")
        assert done.result == ["Hi Cy! Your id is: 1."]


async def test_client_restores_registered_servers() -> None:
    # Added: the TestClient replaces the app's servers only while it is open.
    app = _fresh_app()
    real = InMemoryServer()
    app.servers.register_server("real", real)
    async with TestClient(app) as client:
        assert app.servers["real"] is not real
        await client.send_message_json(
            channel="user_messages",
            payload=dict(user_id=2, user_name="Di", user_messages=[]),
            headers={"topic": "actor_with_args"},
        )
    assert app.servers["real"] is real
    assert app.servers.default is real
    assert real.queued("user_messages") == []


# --- Unit Testing Actors ------------------------------------------------------------------


async def test_actor_with_args() -> None:
    expected = ["Hi Alex! Your id is: 123."]
    actual = await actor_with_args(user_id=123, user_name="Alex", user_messages=[])
    assert actual == expected


def test_actor_decorator_returns_the_function() -> None:
    # Added: "Repid doesn't modify your actor functions in any way."
    assert actor_with_args.__name__ == "actor_with_args"
    assert [a.fn for a in app.actors] == [actor_with_args]
