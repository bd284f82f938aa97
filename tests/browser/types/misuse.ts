// misuse.ts - mistakes the declarations must catch (tsc must fail here).
import { Gatekeeper } from "./gatekeeper.js";

const gk = new Gatekeeper({ token: () => "t" });
gk.upload("not a file");
gk.upload(new Blob([]), { onProgress: (p: string) => p });
gk.list(42);
const s: string = gk.protocol;
new Gatekeeper({ url: 1 });
