// Drives @fedify/fedify against a Salon node for tests/interop/test_fedify.py.
// Reads one JSON command on stdin, writes one JSON result on stdout.
//   {"op": "verify", "method", "url", "headers": [[k, v]...], "body": "<base64>"}
//   {"op": "sign-and-send", "url", "body": "<text>", "keyId", "privateKeyPem", "spec"}
//   {"op": "lookup", "identifier", "httpsToHttp": ["127.0.0.1:PORT", ...]}
//   {"op": "parse", "body": "<AS2 JSON text>"}  (an activity, read with fedify's vocabulary)
//   {"op": "attachments", "body": "<AS2 JSON text>"}  (the embedded object's attachments)
// The tests run everything over plain HTTP on 127.0.0.1, so fedify's document loader is
// built with allowPrivateAddress; for `acct:` lookups (which fedify always resolves over
// https) `httpsToHttp` rewrites https://HOST/ to http://HOST/ in globalThis.fetch.
import { signRequest, verifyRequestDetailed } from "@fedify/fedify/sig";
import { getDocumentLoader } from "@fedify/fedify";
import { Activity, lookupObject } from "@fedify/vocab";
import { lookupWebFinger } from "@fedify/webfinger";
import { webcrypto } from "node:crypto";

const subtle = globalThis.crypto?.subtle ?? webcrypto.subtle;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Buffer.from(b64, "base64");
}

const documentLoader = getDocumentLoader({ allowPrivateAddress: true });

async function verify(cmd) {
  const body = cmd.body ? Buffer.from(cmd.body, "base64") : null;
  const request = new Request(cmd.url, {
    method: cmd.method,
    headers: cmd.headers,
    body: cmd.method === "GET" || cmd.method === "HEAD" ? undefined : body,
  });
  const result = await verifyRequestDetailed(request, {
    documentLoader,
    contextLoader: documentLoader,
  });
  if (result.verified) {
    return {
      verified: true,
      keyId: result.key.id?.href ?? null,
      owner: result.key.ownerId?.href ?? null,
    };
  }
  const reason = { type: result.reason.type };
  if (result.reason.keyId) reason.keyId = result.reason.keyId.href;
  return { verified: false, reason };
}

async function signAndSend(cmd) {
  const privateKey = await subtle.importKey(
    "pkcs8",
    pemToDer(cmd.privateKeyPem),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    true, // fedify insists on an extractable key
    ["sign"],
  );
  const body = new TextEncoder().encode(cmd.body);
  const request = new Request(cmd.url, {
    method: "POST",
    headers: { "Content-Type": "application/activity+json" },
    body,
  });
  const signed = await signRequest(request, privateKey, new URL(cmd.keyId), {
    spec: cmd.spec,
    body: body.buffer,
  });
  const headers = Object.fromEntries(signed.headers.entries());
  const response = await fetch(signed);
  return { status: response.status, text: await response.text(), headers };
}

async function lookup(cmd) {
  const rewrite = new Set(cmd.httpsToHttp ?? []);
  if (rewrite.size > 0) {
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.protocol === "https:" && rewrite.has(url.host)) {
        url.protocol = "http:";
        input = input instanceof Request ? new Request(url, input) : url;
      }
      return realFetch(input, init);
    };
  }
  const out = {};
  if (cmd.webfinger) {
    const jrd = await lookupWebFinger(cmd.webfinger, { allowPrivateAddress: true });
    out.webfinger = jrd;
  }
  const object = await lookupObject(cmd.identifier, {
    documentLoader,
    contextLoader: documentLoader,
    allowPrivateAddress: true,
  });
  if (object == null) return { ...out, found: false };
  const publicKey = await object.getPublicKey?.({ documentLoader, contextLoader: documentLoader });
  const methods = [];
  if (object.getAssertionMethods) {
    for await (const m of object.getAssertionMethods({ documentLoader, contextLoader: documentLoader })) {
      methods.push({ id: m.id?.href ?? null, controller: m.controllerId?.href ?? null });
    }
  }
  return {
    ...out,
    found: true,
    type: object.constructor.name,
    id: object.id?.href ?? null,
    preferredUsername: object.preferredUsername?.toString() ?? null,
    inbox: object.inboxId?.href ?? null,
    sharedInbox: object.endpoints?.sharedInbox?.href ?? null,
    followers: object.followersId?.href ?? null,
    publicKeyId: publicKey?.id?.href ?? null,
    publicKeyOwner: publicKey?.ownerId?.href ?? null,
    assertionMethods: methods,
    assertionMethodIds: (object.assertionMethodIds ?? []).map((u) => u.href),
  };
}

async function parse(cmd) {
  const activity = await Activity.fromJsonLd(JSON.parse(cmd.body), {
    documentLoader,
    contextLoader: documentLoader,
  });
  return {
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    objects: activity.objectIds.map((u) => u.href),
    content: activity.content?.toString() ?? null,
  };
}

async function attachments(cmd) {
  const activity = await Activity.fromJsonLd(JSON.parse(cmd.body), {
    documentLoader,
    contextLoader: documentLoader,
  });
  const object = await activity.getObject({ documentLoader, contextLoader: documentLoader });
  const out = [];
  for await (const item of object.getAttachments({ documentLoader, contextLoader: documentLoader })) {
    const url = item.url;
    out.push({
      type: item.constructor.name,
      url: url instanceof URL ? url.href : (url?.href?.href ?? null),
      mediaType: item.mediaType ?? null,
      duration: item.duration?.toString() ?? null,
      seconds: item.duration?.total?.({ unit: "seconds" }) ?? null,
      name: item.name?.toString() ?? null,
    });
  }
  return { type: activity.constructor.name, object: object.constructor.name, attachments: out };
}

const ops = { verify, "sign-and-send": signAndSend, lookup, parse, attachments };

try {
  const cmd = await readStdin();
  const op = ops[cmd.op];
  if (!op) throw new Error(`unknown op ${cmd.op}`);
  process.stdout.write(JSON.stringify(await op(cmd)) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }) + "\n");
  process.exitCode = 1;
}
