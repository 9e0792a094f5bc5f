/**
 * Checks of the broker's size limits that several handlers share. Cheap on the hot path: a topic
 * shorter than `maxTopicLevels` characters cannot have too many levels, so its levels are not counted.
 */

/** Why `topic` (a name or a filter) breaks `maxTopicLength` or `maxTopicLevels`; undefined when it does not. */
export function topicLimitProblem(topic: string, maxLength: number, maxLevels: number): string | undefined {
  const length = topic.length
  if (length > maxLength) return `topic of ${length} characters, more than maxTopicLength ${maxLength}`
  if (length < maxLevels) return undefined
  let levels = 1
  for (let i = 0; i < length; i++) if (topic.charCodeAt(i) === 0x2f) levels++
  return levels > maxLevels ? `topic of ${levels} levels, more than maxTopicLevels ${maxLevels}` : undefined
}
