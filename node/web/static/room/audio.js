// The room's audio: one RTCPeerConnection to our node, signalled over the room socket.
// The client always offers: recvonly while listening, sendrecv (with the microphone) when the
// node says we may speak. The node decides who is heard; muting here only saves bandwidth.
// The connection uses the node's STUN/TURN servers (room/ice.js), fetched before it starts.

import { rtcConfiguration } from "./ice.js";

const GATHER_WAIT_MS = 1500;
const ANSWER_WAIT_MS = 10000;
const MOVE_WAIT_MS = 5000; // a moved connection's old peer is closed after this at the latest

export class RoomAudio {
  /** send(signal) posts a signalling message to the node; element plays what we hear. */
  constructor(send, element, { onState, onMicError } = {}) {
    this.send = send;
    this.element = element;
    this.onState = onState || (() => {});
    this.onMicError = onMicError || (() => {});
    this.pc = null;
    this.transceiver = null;
    this.mic = null;
    this.canSpeak = false;
    this.micEnabled = true;
    this.queue = Promise.resolve();
    this.awaitingAnswer = null;
    this.trickle = false;
    this.starts = 0; // a start superseded (or closed) while it fetched ICE servers gives up
  }

  /** Start (or restart) the peer connection; call from a click so playback may start. */
  async start(canSpeak) {
    this.element.play().catch(() => {});
    this.canSpeak = canSpeak;
    this.closePeer();
    const attempt = this.starts;
    this.onState("connecting");
    const configuration = await rtcConfiguration();
    if (attempt !== this.starts) return;
    let pc;
    try {
      pc = new RTCPeerConnection(configuration);
    } catch (error) {
      // a server entry this browser refuses: connect directly rather than not at all
      console.warn("salon: ICE servers refused, connecting without them", error);
      pc = new RTCPeerConnection({ iceServers: [] });
    }
    this.pc = pc;
    this.trickle = false;
    this.transceiver = pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      this.element.srcObject = new MediaStream([event.track]);
      this.element.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => this.onState(pc.connectionState));
    pc.addEventListener("icecandidate", (event) => {
      if (!this.trickle || pc !== this.pc) return;
      const c = event.candidate;
      this.send({
        type: "ice",
        candidate: c ? c.candidate : "",
        sdpMid: c ? c.sdpMid : this.transceiver.mid,
        sdpMLineIndex: c ? c.sdpMLineIndex : 0,
      });
    });
    return this.negotiate();
  }

  /** The node asked for a fresh offer (our permission to speak changed). */
  renegotiate(canSpeak) {
    if (typeof canSpeak === "boolean") this.canSpeak = canSpeak;
    if (!this.pc) return Promise.resolve();
    return this.negotiate();
  }

  async handle(signal) {
    if (signal.type === "answer" && this.pc) {
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
      } finally {
        this.awaitingAnswer?.();
      }
    } else if (signal.type === "renegotiate") {
      await this.renegotiate(signal.canSpeak);
    } else if (signal.type === "reconnect") {
      await this.moved();
    }
  }

  /** The node moved our media to another of its workers (docs/api.md "reconnect"): a new
   * connection first; the old one closes once the new one is connected (make-before-break). */
  async moved() {
    const old = this.pc;
    this.pc = null; // start() must not close it yet
    this.transceiver = null;
    await this.start(this.canSpeak);
    if (!old) return;
    const pc = this.pc;
    await new Promise((resolve) => {
      const check = () => { if (!pc || pc.connectionState === "connected") resolve(); };
      if (pc) pc.addEventListener("connectionstatechange", check);
      check();
      setTimeout(resolve, MOVE_WAIT_MS);
    });
    old.close();
  }

  setMicEnabled(enabled) {
    this.micEnabled = enabled;
    if (this.mic) this.mic.enabled = enabled;
  }

  negotiate() {
    // One offer at a time: the next waits for the node's answer to the previous one.
    this.queue = this.queue.then(() => this.offer()).catch((error) => {
      console.warn("salon: negotiation failed", error);
    });
    return this.queue;
  }

  async offer() {
    const pc = this.pc;
    if (!pc || pc.signalingState === "closed") return;
    if (this.canSpeak) {
      const track = await this.microphone();
      if (track) {
        await this.transceiver.sender.replaceTrack(track);
        this.transceiver.direction = "sendrecv";
      } else {
        this.transceiver.direction = "recvonly";
      }
    } else {
      this.transceiver.direction = "recvonly";
      await this.transceiver.sender.replaceTrack(null);
      this.releaseMicrophone();
    }
    const answered = new Promise((resolve) => {
      this.awaitingAnswer = resolve;
      setTimeout(resolve, ANSWER_WAIT_MS);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered(pc);
    if (pc !== this.pc) return;
    this.send({ type: "offer", sdp: pc.localDescription.sdp });
    this.trickle = true;
    await answered;
    this.awaitingAnswer = null;
  }

  /** Wait briefly for ICE candidates so the offer carries them; later ones trickle. */
  gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, GATHER_WAIT_MS);
    });
  }

  async microphone() {
    if (this.mic && this.mic.readyState === "live") return this.mic;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      this.mic = stream.getAudioTracks()[0] || null;
      if (this.mic) this.mic.enabled = this.micEnabled;
      return this.mic;
    } catch (error) {
      this.onMicError(error);
      return null;
    }
  }

  releaseMicrophone() {
    if (this.mic) this.mic.stop();
    this.mic = null;
  }

  closePeer() {
    this.starts += 1;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.transceiver = null;
    this.awaitingAnswer?.();
  }

  close() {
    this.closePeer();
    this.releaseMicrophone();
    this.element.srcObject = null;
    this.onState("closed");
  }

  /** Inbound audio statistics (tests and the audio indicator use them). */
  async inbound() {
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        return {
          packetsReceived: report.packetsReceived || 0,
          totalAudioEnergy: report.totalAudioEnergy || 0,
          audioLevel: report.audioLevel || 0,
          totalSamplesDuration: report.totalSamplesDuration || 0,
          totalSamplesReceived: report.totalSamplesReceived || 0,
          concealedSamples: report.concealedSamples || 0,
          packetsLost: report.packetsLost || 0,
          codec: (stats.get(report.codecId) || {}).mimeType || "",
        };
      }
    }
    return null;
  }
}
