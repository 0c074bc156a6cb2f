// Publishing to Pub/Sub from functions. @google-cloud/pubsub honours PUBSUB_EMULATOR_HOST, which
// the Functions emulator sets; the topics exist because triggers are declared on them (the
// emulator and a deploy both create a trigger's topic).
import { PubSub } from "@google-cloud/pubsub";

let client: PubSub | undefined;

function pubsub(): PubSub {
  client ??= new PubSub();
  return client;
}

/** Publishes one JSON message; resolves with its Pub/Sub message ID. */
export function publishJson(topic: string, data: unknown): Promise<string> {
  return pubsub().topic(topic).publishMessage({ json: data });
}
