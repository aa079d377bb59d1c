// Drives Debian's firefox-esr (headless, WebDriver BiDi through puppeteer-core) through the
// Salon web client as one person: sign up, open a room, join as a listener, measure what is
// heard, (with "browse": true) go to the hallway and keep hearing the room, come back to the
// same session, raise hand, join the stage when invited, speak with Firefox's fake microphone
// (a 1 kHz tone), leave. Prints one JSON report on stdout; progress goes to stderr.
//
// Usage: node driver.mjs '{"base": "http://10.x.y.1:PORT", "room": "<room url>",
//                          "user": "bob", "password": "...", "speakSeconds": 4}'
// The ICE privacy prefs are Firefox's defaults (mDNS host candidates): that is the point.
import puppeteer from "puppeteer-core";

const config = JSON.parse(process.argv[2]);
const started = Date.now();
const report = { steps: [], errors: [], console: [] };

function step(name) {
  report.steps.push({ name, ms: Date.now() - started });
  process.stderr.write(`firefox driver: ${name}\n`);
}

const PREFS = {
  // fake microphone (a 1 kHz tone) without a permission prompt
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  // the test node is plain http on a private address: let it use the microphone as a
  // secure context would (a real deployment serves https)
  "media.devices.insecure.enabled": true,
  "media.getusermedia.insecure.enabled": true,
  // let the page play audio without a gesture
  "media.autoplay.default": 0,
  // stay off the network: no DoH, captive portal, telemetry, updates, safe browsing
  "network.trr.mode": 5,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "toolkit.telemetry.enabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "app.update.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "extensions.getAddons.cache.enabled": false,
  "browser.shell.checkDefaultBrowser": false,
  ...(config.prefs || {}),
};

/** Wait for a visible, enabled control whose accessible text is NAME; return its handle. */
async function control(page, selector, name) {
  const handle = await page.waitForFunction(
    (selector, name) => {
      for (const el of document.querySelectorAll(selector)) {
        const text = (el.getAttribute("aria-label") || el.textContent || "").trim();
        if (text === name && !el.disabled && el.getClientRects().length) return el;
      }
      return null;
    },
    { polling: 100 },
    selector,
    name,
  );
  return handle.asElement();
}

async function click(page, name) {
  step(`click ${name}`);
  await (await control(page, "button", name)).click();
}

/** Type into the input labelled LABEL (Firefox gives a password input no ARIA role). */
async function fill(page, label, value) {
  const handle = await page.waitForFunction(
    (label) => {
      for (const el of document.querySelectorAll("label")) {
        if (!el.textContent.trim().startsWith(label)) continue;
        const input = el.control || el.querySelector("input");
        if (input) return input;
      }
      return null;
    },
    { polling: 100 },
    label,
  );
  await handle.asElement().type(value);
}

/** What the page hears from the node over SECONDS: inbound-rtp audio energy and packets.
 * (totalAudioEnergy grows by mean(level²)·seconds, as in Chromium; an AudioContext stays
 * suspended in headless Firefox without an audio device, so no analyser here.) */
const LISTEN = `async (seconds) => {
  const pc = window.salonDebug && window.salonDebug.pc;
  if (!pc) return { error: "no peer connection" };
  const inbound = async () => [...(await pc.getStats()).values()]
    .find((s) => s.type === "inbound-rtp" && s.kind === "audio") || {};
  const before = await inbound();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await inbound();
  return {
    seconds,
    energy: (after.totalAudioEnergy || 0) - (before.totalAudioEnergy || 0),
    packets: (after.packetsReceived || 0) - (before.packetsReceived || 0),
    audioLevel: after.audioLevel || 0,
    state: pc.connectionState,
  };
}`;

/** The selected ICE pair and what this browser offered, from getStats and the SDP. */
const ICE = `async () => {
  const pc = window.salonDebug && window.salonDebug.pc;
  if (!pc) return null;
  const stats = [...(await pc.getStats()).values()];
  const pair = stats.find((s) => s.type === "candidate-pair" && s.state === "succeeded"
    && (s.selected || s.nominated));
  const byId = (id) => stats.find((s) => s.id === id) || {};
  const offered = (pc.localDescription ? pc.localDescription.sdp : "")
    .split("\\r\\n").filter((l) => l.startsWith("a=candidate:"));
  return {
    offered,
    endOfCandidates: (pc.localDescription ? pc.localDescription.sdp : "").includes("a=end-of-candidates"),
    local: pair ? byId(pair.localCandidateId) : null,
    remote: pair ? byId(pair.remoteCandidateId) : null,
  };
}`;

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: config.firefox || "/usr/bin/firefox-esr",
  headless: true,
  extraPrefsFirefox: PREFS,
  protocolTimeout: 60_000,
});
try {
  report.version = await browser.version();
  const page = await browser.newPage();
  page.setDefaultTimeout(config.timeoutMs || 20_000);
  page.on("pageerror", (error) => report.errors.push(String(error)));
  page.on("console", (message) => report.console.push(`${message.type()}: ${message.text()}`));

  step("sign up");
  await page.goto(config.base + "/");
  await fill(page, "Username", config.user);
  await fill(page, "Password", config.password);
  await click(page, "Create account");
  await control(page, "h1, h2", "Hallway");

  step("open the room");
  await page.goto(config.room);
  await click(page, "Join");
  await control(page, "button", "Raise hand");
  step("listening");
  report.listening = await page.evaluate(`(${LISTEN})(${config.listenSeconds || 3})`);
  report.ice = await page.evaluate(`(${ICE})()`);

  if (config.browse) {
    // the player that stays: the hallway keeps the room playing; Back to room is the same session
    step("browse the hallway");
    await page.evaluate(() => { window.firstPc = window.salonDebug.pc; });
    await (await control(page, "a", "Hallway")).click();
    await control(page, "h1, h2", "Hallway");
    await control(page, "section[role=region]", "Now playing");
    report.browsing = await page.evaluate(`(${LISTEN})(${config.listenSeconds || 3})`);
    step("back to the room");
    await (await control(page, "a", "Back to room")).click();
    await control(page, "button", "Raise hand");
    report.sameSession = await page.evaluate(
      () => window.salonDebug.pc === window.firstPc && window.salonDebug.sessions() === 1,
    );
  }

  await click(page, "Raise hand");
  await click(page, "Join as speaker");
  await control(page, "button", "Mute");
  step("speaking");
  await new Promise((r) => setTimeout(r, (config.speakSeconds || 4) * 1000));
  report.speakingIce = await page.evaluate(`(${ICE})()`);

  await click(page, "Leave quietly");
  await page.waitForFunction(
    () => document.body.textContent.includes("You left the room."),
    { polling: 100 },
  );
  step("left");
} catch (error) {
  report.failure = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.failure ? 1 : 0);
