// The CLI's tables of many rows (VFs, attachments, ports, FDB entries): one line a row,
// no rule between rows (64 VFs are 64 lines, not 130), no colours.
import Table from 'cli-table3';

export function listTable(head: string[], opts: Omit<Table.TableConstructorOptions, 'head' | 'style' | 'chars'> = {}): Table.Table {
  return new Table({ ...opts, head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
}
