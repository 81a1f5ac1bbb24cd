"""Terminal chat with a running stack, through the web chat API (`make chat`).

The server issues the conversation's cookie on the first message; the session's cookie jar
keeps it (`unsafe=True`: aiohttp keeps no cookies of an IP address such as 127.0.0.1
otherwise).
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from pmi.settings import load_settings


def _print_replies(body: dict) -> None:
    if "error" in body:
        print(f"(the app refused it: {body['error']})")
    for message in body.get("messages", []):
        print(f"bot> {message['text']}")
        for button in message.get("buttons") or []:
            print(f"     [{button['title']}]  ->  {button['payload']}")


async def chat() -> None:
    settings = load_settings()
    url = f"http://{settings.app.host}:{settings.app.port}/api/chat"
    print("Terminal chat with the PMI helpdesk. Type a message; Ctrl-D to quit.")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, _read)
            if line is None:
                return
            if not line.strip():
                continue
            try:
                async with http.post(url, json={"text": line}) as resp:
                    if resp.status == 404:
                        print("(the web chat is off: start the app with WEBCHAT_ENABLED=1)")
                        continue
                    _print_replies(await resp.json())
            except aiohttp.ClientError as exc:
                print(f"(cannot reach the app at {url}: {exc}; is `make run` running?)")


def _read() -> str | None:
    try:
        return input("you> ")
    except EOFError:
        return None


def main() -> None:
    try:
        asyncio.run(chat())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
