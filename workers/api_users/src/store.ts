/** A user as the API returns it. */
export interface User {
  id: number;
  name: string;
  email: string;
  age?: number;
}

/** The fields a client sends; `id` is the store's. */
export type UserInput = Omit<User, "id">;

/** The users every fresh worker starts with. */
export const SEED_USERS: readonly UserInput[] = [
  { name: "Ada Lovelace", email: "ada@example.com", age: 36 },
  { name: "Alan Turing", email: "alan@example.com", age: 41 },
];

/** An in-memory user store; each worker instance has its own, so a restart starts from the seed. */
export class UserStore {
  #users = new Map<number, User>();
  #nextId = 1;

  constructor(seed: readonly UserInput[] = SEED_USERS) {
    for (const user of seed) this.create(user);
  }

  /** Every user, by id. */
  list(): User[] {
    return [...this.#users.values()];
  }

  /** The user with `id`, if any. */
  get(id: number): User | undefined {
    return this.#users.get(id);
  }

  /** Adds a user and returns it with its new id. */
  create(input: UserInput): User {
    const user = { id: this.#nextId++, ...input };
    this.#users.set(user.id, user);
    return user;
  }

  /** Replaces a user's fields; undefined when there is no such user. */
  replace(id: number, input: UserInput): User | undefined {
    if (!this.#users.has(id)) return undefined;
    const user = { id, ...input };
    this.#users.set(id, user);
    return user;
  }

  /** Removes a user; false when there was none. */
  delete(id: number): boolean {
    return this.#users.delete(id);
  }
}
