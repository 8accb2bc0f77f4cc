"""The core works with nothing but the standard library: no pydantic, no broker clients."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    # Make these packages unimportable, as if they were not installed.
    for blocked in ("pydantic", "pydantic_core", "redis", "grpc", "google"):
        sys.modules[blocked] = None

    import asyncio
    import repid
    from repid import DefaultConverter, Repid, Router, TestClient, BasicConverter
    from repid.converters.default import pydantic_available

    assert not pydantic_available()
    app = Repid()
    router = Router()

    @router.actor
    async def a(user_id: int, name: str = "x"):
        return user_id, name

    app.include_router(router)

    async def main():
        async with TestClient(app) as client:
            await client.send_message_json(
                channel="default", payload={"user_id": "1"}, headers={"topic": "a"}
            )
            [msg] = client.get_processed_messages()
            # BasicConverter: no coercion
            assert msg.result == ("1", "x"), msg
        print("ok")

    asyncio.run(main())
    for name in ("RedisServer", "PubsubServer"):
        try:
            getattr(repid, name)
        except ImportError as exc:
            assert "pip install" in str(exc), exc
        else:
            raise AssertionError(name + " imported without its client library")
    """
)


def test_core_without_pydantic_or_broker_clients() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
