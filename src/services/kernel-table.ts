// A kernel routing table as a live list, for the agent's BGP mode (the table
// its daemon writes): dump + route monitor live in the datapath layer.
import { RouteTableWatch, type TableRoute } from '../datapath/route-table.js'

export type { TableRoute }

export interface KernelTableWatch {
  /** unicast routes with a gateway */
  current(): TableRoute[]
  close(): void
}

export function watchKernelTable(table: number, onChange: () => void): KernelTableWatch {
  return RouteTableWatch.start(table, onChange)
}
