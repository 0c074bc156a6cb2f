// Pure: the encryption of stored private keys (AES-256-GCM, certificate ID as AAD).
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { decryptPrivateKey, encryptPrivateKey } from "../../functions/src/certificates/keyEncryption.ts";

const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
const kek = randomBytes(32);

describe("private key encryption", () => {
  it("round-trips and keeps no plaintext in the stored form", () => {
    const enc = encryptPrivateKey(pem, kek, 7);
    assert.equal(decryptPrivateKey(enc, kek, 7), pem);
    const stored = JSON.stringify(enc);
    assert.ok(!stored.includes("PRIVATE KEY"));
    assert.ok(!stored.includes(pem.split("\n")[1] as string));
  });

  it("uses a fresh IV each time", () => {
    assert.notEqual(encryptPrivateKey(pem, kek, 7).iv, encryptPrivateKey(pem, kek, 7).iv);
  });

  it("refuses a ciphertext moved to another certificate ID (AAD binding)", () => {
    const enc = encryptPrivateKey(pem, kek, 7);
    assert.throws(() => decryptPrivateKey(enc, kek, 8));
  });

  it("refuses another key-encryption key and a tampered ciphertext", () => {
    const enc = encryptPrivateKey(pem, kek, 7);
    assert.throws(() => decryptPrivateKey(enc, randomBytes(32), 7));
    const bytes = Buffer.from(enc.ciphertext, "base64");
    bytes[0] = (bytes[0] as number) ^ 1;
    assert.throws(() => decryptPrivateKey({ ...enc, ciphertext: bytes.toString("base64") }, kek, 7));
  });
});
