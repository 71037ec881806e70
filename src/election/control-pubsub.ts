import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import type { ControlPubSub, GossipMessage, ValidationVerdict } from './gossip-adapter.js'

const VERDICTS: Record<ValidationVerdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject
}

/**
 * The narrow pubsub the election adapter needs, over @libp2p/gossipsub. The
 * adapter itself knows only {@link ControlPubSub}, so that it can be driven by
 * something else; this is the one the node runs, and the one the adapter's
 * integration test runs against.
 */
export function controlPubSub (pubsub: GossipSub): ControlPubSub {
  return {
    subscribe: (topic) => { pubsub.subscribe(topic) },
    unsubscribe: (topic) => { pubsub.unsubscribe(topic) },
    publish: async (topic, data) => await pubsub.publish(topic, data),
    onMessage: (listener) => {
      const handler = (evt: CustomEvent<GossipMessage>): void => { listener(evt.detail) }
      pubsub.addEventListener('message', handler)
      return () => { pubsub.removeEventListener('message', handler) }
    },
    setValidator: (topic, validator) => {
      if (validator === undefined) {
        pubsub.topicValidators.delete(topic)
        return
      }
      pubsub.topicValidators.set(topic, (peer, message) => VERDICTS[validator(peer, message)])
    }
  }
}
