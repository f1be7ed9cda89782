/**
 * SANDBOXD_WARM_POOL: the warm pool's shapes, a comma-separated list of
 * `<cores>x<memory>x<disk>:<count>`, memory in M (MiB) or G (GiB), disk in G:
 *
 *   SANDBOXD_WARM_POOL=1x512Mx2G:8,2x2Gx8G:2
 *
 * keeps 8 sandboxes of 1 core, 512 MiB and 2 GiB, and 2 of 2 cores, 2 GiB and
 * 8 GiB, made, started and SSH-ready. Internet is not part of a shape: members
 * have none until a claim turns it on.
 */
export interface PoolShape {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  count: number;
}

export class PoolConfigError extends Error {
  override readonly name = "PoolConfigError";
}

/** The canonical name of a shape ("1x512Mx2G"), stored as the members' pool label. */
export function shapeKey(s: { cores: number; memoryMiB: number; diskGiB: number }): string {
  return `${s.cores}x${s.memoryMiB}Mx${s.diskGiB}G`;
}

export function parseWarmPool(text: string, name: string): PoolShape[] {
  const shapes: PoolShape[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d{1,4})x(\d{1,7})([MG])x(\d{1,5})G:(\d{1,4})$/i.exec(part);
    if (!m) throw new PoolConfigError(`${name}: expected <cores>x<memory>M|G x<disk>G:<count> like 1x512Mx2G:8, got '${part}'`);
    const shape = {
      cores: Number(m[1]), memoryMiB: Number(m[2]) * (m[3]!.toUpperCase() === "G" ? 1024 : 1), diskGiB: Number(m[4]), count: Number(m[5]),
    };
    if (shape.cores < 1 || shape.memoryMiB < 64 || shape.diskGiB < 1) throw new PoolConfigError(`${name}: '${part}' needs at least 1 core, 64 MiB and 1 GiB`);
    if (shapes.some((s) => shapeKey(s) === shapeKey(shape))) throw new PoolConfigError(`${name}: the shape ${shapeKey(shape)} is given twice`);
    if (shape.count > 0) shapes.push(shape);
  }
  return shapes;
}
