// The api_users worker: a JSON CRUD API at /api/users (docs at /static/api_users/swagger/).
import { serve, workerEnv } from "../../../src/worker/mod.ts";
import { createApp } from "./app.ts";

serve(createApp({ route: workerEnv().route }));
