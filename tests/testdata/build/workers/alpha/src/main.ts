import { greet } from "../../../shared/greet.ts";
import { VERSION } from "./version.ts";

console.log(`${greet("alpha")} version=${VERSION}`);
