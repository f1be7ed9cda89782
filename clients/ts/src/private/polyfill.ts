/**
 * Symbol.asyncDispose / Symbol.dispose where the runtime lacks them (Node
 * before 20.4, older browsers): the registered symbols TypeScript's `using`
 * helpers also look up. Imported for its side effect before any class that
 * defines [Symbol.asyncDispose].
 */
const sym = Symbol as unknown as { asyncDispose?: symbol; dispose?: symbol };
if (typeof sym.asyncDispose !== "symbol") {
  Object.defineProperty(Symbol, "asyncDispose", { value: Symbol.for("Symbol.asyncDispose") });
}
if (typeof sym.dispose !== "symbol") {
  Object.defineProperty(Symbol, "dispose", { value: Symbol.for("Symbol.dispose") });
}

export {};
