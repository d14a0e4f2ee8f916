// The API keys page: "Copy" puts the new key on the clipboard (or selects it where the
// clipboard is not available, e.g. on plain HTTP away from localhost).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    document.execCommand("copy");
  }
  button.textContent = button.dataset.copied;
});
