// Marks the current page in the nav and fills the home page's user list from the api_users worker.
(() => {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === location.pathname) link.classList.add("active");
  }

  const list = document.getElementById("users");
  if (!list) return;
  const show = (...items) => list.replaceChildren(...items);
  const item = (text, className) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (className) li.className = className;
    return li;
  };

  fetch(list.dataset.src, { headers: { accept: "application/json" } })
    .then((res) => {
      if (!res.ok) throw new Error(`status ${res.status}`);
      return res.json();
    })
    .then((users) => {
      if (users.length === 0) return show(item("No users yet.", "muted"));
      show(...users.map((u) => item(`#${u.id} ${u.name} <${u.email}>`)));
    })
    .catch((err) =>
      show(item(`The users API did not answer (${err.message}).`, "muted"))
    );
})();
