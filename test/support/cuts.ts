/**
 * Where specs that feed a value in pieces cut it: `cuts` are offsets (any order, each taken
 * modulo `length + 1`, duplicates once). The ranges cover the value in order; a range may be
 * empty (a cut at 0, at the end, or two at one place).
 */
export const cutRanges = (length: number, cuts: ReadonlyArray<number>): Array<readonly [start: number, end: number]> => {
  const points = [...new Set(cuts.map((c) => c % (length + 1)))].sort((a, b) => a - b)
  const ranges: Array<readonly [number, number]> = []
  let from = 0
  for (const at of points) {
    ranges.push([from, at])
    from = at
  }
  ranges.push([from, length])
  return ranges
}
