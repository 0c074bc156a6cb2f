// Publishing to Pub/Sub from functions. @google-cloud/pubsub honours PUBSUB_EMULATOR_HOST, which
// the Functions emulator sets; the topics exist because triggers are declared on them (the
// emulator and a deploy both create a trigger's topic).
import { PubSub, type Topic } from "@google-cloud/pubsub";

let client: PubSub | undefined;
/** One Topic per name: each has its own publisher, which gathers the messages of a few ms into one call. */
const topics = new Map<string, Topic>();

function topicNamed(name: string): Topic {
  let topic = topics.get(name);
  if (!topic) {
    client ??= new PubSub();
    topic = client.topic(name);
    topics.set(name, topic);
  }
  return topic;
}

/** Publishes one JSON message; resolves with its Pub/Sub message ID. */
export function publishJson(topic: string, data: unknown): Promise<string> {
  return topicNamed(topic).publishMessage({ json: data });
}

/** Batch messages of one event in flight at once. */
export const PUBLISH_CONCURRENCY = 50;

/**
 * Publishes `count` messages, at most `concurrency` at a time, each built when its turn comes:
 * enough in flight that the topic's publisher sends them in few calls, few enough that a
 * broadcast's thousands of batch messages (4,950 for a million recipients) are never all built
 * and serialized in memory at once. Starts no new one after a failure, and rejects with it.
 */
export async function publishEach(
  topic: string,
  count: number,
  messageAt: (i: number) => unknown,
  { concurrency = PUBLISH_CONCURRENCY, publish = publishJson }: { concurrency?: number; publish?: (topic: string, data: unknown) => Promise<string> } = {},
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const i = next++;
      try {
        await publish(topic, messageAt(i));
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
