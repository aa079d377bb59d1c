"""Scraping a node's metrics site and reading samples, with prometheus_client's parser."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape_text(address: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{address}/metrics") as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        return await resp.text()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(address: str) -> Samples:
    return parse(await scrape_text(address))


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample NAME{LABELS}; KeyError naming what is there when it is missing."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        have = sorted(f"{n}{dict(ls)}" for n, ls in samples if n == name)
        raise KeyError(f"no sample {name}{labels}; have {have}")
    return samples[key]


def exported_names(text: str) -> set[str]:
    """Every metric and sample name the text exposes (families and their _total, _bucket…)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def listening_ports() -> set[int]:
    """TCP ports this process listens on (Linux: its socket inodes in /proc/net/tcp*)."""
    inodes: set[str] = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
