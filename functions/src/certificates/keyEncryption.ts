// AES-256-GCM for uploaded private keys. The certificate ID is bound in as additional
// authenticated data, so a ciphertext copied onto another certificate's document fails to open.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { z } from "zod";

export const EncryptedKeySchema = z.object({
  alg: z.literal("A256GCM"),
  iv: z.string(),
  ciphertext: z.string(),
  tag: z.string(),
});
export type EncryptedKey = z.output<typeof EncryptedKeySchema>;

const aad = (certificateId: number) => Buffer.from(`pushCertificates/${certificateId}`);

export function encryptPrivateKey(privateKey: string, kek: Buffer, certificateId: number): EncryptedKey {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(aad(certificateId));
  const ciphertext = Buffer.concat([cipher.update(privateKey, "utf8"), cipher.final()]);
  return { alg: "A256GCM", iv: iv.toString("base64"), ciphertext: ciphertext.toString("base64"), tag: cipher.getAuthTag().toString("base64") };
}

export function decryptPrivateKey(encrypted: EncryptedKey, kek: Buffer, certificateId: number): string {
  const decipher = createDecipheriv("aes-256-gcm", kek, Buffer.from(encrypted.iv, "base64"));
  decipher.setAAD(aad(certificateId));
  decipher.setAuthTag(Buffer.from(encrypted.tag, "base64"));
  return Buffer.concat([decipher.update(Buffer.from(encrypted.ciphertext, "base64")), decipher.final()]).toString("utf8");
}
