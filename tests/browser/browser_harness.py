"""Real Chromium (Debian's, driven by Playwright) against real nodes: launch, people, audio.

Each browser process gets its own fake microphone (Chromium takes the WAV file on its
command line), so every person who speaks runs in their own browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.netns import Namespace
from tests.support.audio import tone

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=user-gesture-required",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}

Launch = Callable[..., Awaitable[Any]]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need playwright (pip install -e '.[test]')")


async def chromium_launcher() -> AsyncIterator[Launch]:
    """Yields launch(mic=WAV|None) -> Browser; closes everything afterwards."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched: list[Any] = []

        async def launch(mic: Path | None = None) -> Any:
            args = list(CHROMIUM_ARGS)
            if mic is not None:
                args.append(f"--use-file-for-fake-audio-capture={mic}")
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=args,
                headless=True,
                # Playwright mutes headless audio by default; we want the real playout path.
                ignore_default_args=["--mute-audio"],
            )
            launched.append(browser)
            return browser

        try:
            yield launch
        finally:
            for browser in launched:
                await browser.close()


@contextlib.asynccontextmanager
async def chromium_in_namespace(
    ns: Namespace, tmp_path: Path, args: list[str] = CHROMIUM_ARGS
) -> AsyncIterator[Any]:
    """A headless Chromium (playwright) running inside NS's network namespace, audio not
    muted; closed on exit."""
    from playwright.async_api import async_playwright

    wrapper = tmp_path / "chromium-in-namespace"
    wrapper.write_text(f'#!/bin/sh\nexec {" ".join(ns.command(str(CHROMIUM)))} "$@"\n')
    wrapper.chmod(0o755)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(wrapper),
            args=args,
            headless=True,
            ignore_default_args=["--mute-audio"],
        )
        try:
            yield browser
        finally:
            await browser.close()


def speech(path: Path, text: str) -> Path:
    """Speech as a 48 kHz mono WAV (espeak-ng + sox); a tone if they are missing."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return tone(path, 300, 4.0)
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path), "pad", "0", "0.2"],
        check=True,
    )
    return path


class Person:
    """One person's browser tab on one node, driven like a user would."""

    def __init__(self, page: Any, base: str, name: str) -> None:
        self.page = page
        self.base = base
        self.name = name
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("requestfailed", lambda req: self.console.append(f"failed: {req.url}"))

    @classmethod
    async def open(
        cls, browser: Any, base: str, name: str, viewport: dict[str, int] | None = None
    ) -> Person:
        context = await browser.new_context(viewport=viewport or DESKTOP)
        await context.grant_permissions(["microphone"], origin=base)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        return cls(page, base, name)

    async def signup(self) -> None:
        page = self.page
        await page.goto(self.base + "/")
        try:
            await page.get_by_label("Username").wait_for()
        except Exception as exc:  # playwright's TimeoutError: say what the page showed
            text = await page.locator("body").inner_text()
            raise AssertionError(
                f"sign-in form not shown: {text[:300]!r}; console: {self.console[-20:]}"
            ) from exc
        await page.get_by_label("Username").fill(self.name)
        await page.get_by_label("Password").fill("password123")
        await page.get_by_role("button", name="Create account").click()
        await page.get_by_role("heading", name="Hallway").wait_for()

    async def join_and_hear(self, room_url: str, title: str, timeout: float) -> None:
        """Sign up, open the room titled TITLE, join it and wait until sound is heard."""
        await self.signup()
        await self.page.goto(room_url)
        await self.page.get_by_role("heading", name=title).wait_for()
        await self.button("Join")
        await self.wait_hearing(timeout=timeout)

    async def button(self, name: str, **kw: Any) -> None:
        await self.page.get_by_role("button", name=name, exact=True, **kw).click()

    async def go_on_stage(self) -> None:
        """Raise a hand, and once invited (a host bot's --auto-invite) join as speaker."""
        await self.button("Raise hand")
        await self.button("Join as speaker")
        await self.page.get_by_role("button", name="Mute", exact=True).wait_for()

    async def inbound(self) -> dict[str, float]:
        stats = await self.page.evaluate("() => window.salonDebug.inbound()")
        return stats or {"totalAudioEnergy": 0.0, "packetsReceived": 0}

    async def energy_over(self, seconds: float) -> float:
        """Inbound audio energy received during the next SECONDS (0 when silent)."""
        before = (await self.inbound())["totalAudioEnergy"]
        await asyncio.sleep(seconds)
        return float((await self.inbound())["totalAudioEnergy"] - before)

    async def wait_hearing(self, timeout: float = 15.0, window: float = 1.0) -> float:
        """Wait until this person hears sound; returns the energy of that window."""
        deadline = time.monotonic() + timeout
        energy = 0.0
        while time.monotonic() < deadline:
            energy = await self.energy_over(window)
            if energy > ENERGY_HEARD:
                return energy
        raise AssertionError(f"{self.name} heard nothing for {timeout} s (energy {energy})")

    async def wait_silence(self, timeout: float = 10.0, window: float = 1.0) -> float:
        deadline = time.monotonic() + timeout
        energy = 0.0
        while time.monotonic() < deadline:
            energy = await self.energy_over(window)
            if energy < ENERGY_SILENT:
                return energy
        raise AssertionError(f"{self.name} still hears sound after {timeout} s (energy {energy})")


async def heard_in_room(watcher: Any, room_id: str, name: str, floor: float = 0.05) -> bool:
    """Whether the room's mixer hears NAME now (their level in the room's API view, which
    WATCHER, a signed-in ApiUser, reads)."""
    _, view = await watcher.call("GET", f"/api/rooms/{room_id}")
    return float(view.get("levels", {}).get(name, 0.0)) > floor


# totalAudioEnergy grows by mean(level²)·seconds: a 0.3 full-scale tone gives ≈ 0.04/s,
# speech ≈ 0.005-0.02/s, Opus-coded silence ≈ 0.
ENERGY_HEARD = 0.002
ENERGY_SILENT = 0.0002


async def has_horizontal_overflow(page: Any) -> bool:
    return bool(
        await page.evaluate("() => document.scrollingElement.scrollWidth > window.innerWidth")
    )


UNNAMED_CONTROLS_JS = """
() => {
  const controls = [...document.querySelectorAll(
    'button, input:not([type=hidden]), textarea, select, a[href], [role=button]')];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const named = (el) => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).some(id => (document.getElementById(id)?.textContent || '').trim()))
      return true;
    if (el.labels && [...el.labels].some(l => l.textContent.trim())) return true;
    if (el.tagName === 'INPUT' && ['submit', 'button'].includes(el.type) && el.value) return true;
    if ((el.textContent || '').trim()) return true;
    if ([...el.querySelectorAll('img[alt]')].some(i => i.alt.trim())) return true;
    return !!(el.getAttribute('title') || '').trim();
  };
  return controls.filter(visible).filter(el => !named(el)).map(el => el.outerHTML.slice(0, 120));
}
"""


async def unnamed_controls(page: Any) -> list[str]:
    """Visible buttons, inputs and links without an accessible name (a cheap name check)."""
    result = await page.evaluate(UNNAMED_CONTROLS_JS)
    return list(result)


# An accessibility-tree line for a control with no name, e.g. `- button:` or `- textbox`.
UNNAMED_IN_TREE = re.compile(
    r"^\s*- (button|textbox|searchbox|link|checkbox|radio|combobox|spinbutton|switch|tab)"
    r"(\s*\[[^\]]*\])*:?\s*$",
    re.M,
)


async def naming_failures(page: Any, label: str) -> list[str]:
    """Controls without an accessible name, from Chromium's own accessibility tree and the DOM."""
    failures = []
    tree = await page.locator("body").aria_snapshot()
    for match in UNNAMED_IN_TREE.finditer(tree):
        failures.append(f"{label}: unnamed {match.group(1)} in the accessibility tree")
    for html in await unnamed_controls(page):
        failures.append(f"{label}: control without a name: {html}")
    return failures
