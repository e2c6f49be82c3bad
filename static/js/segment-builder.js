// The segment builder: draws the rule tree held in the form's rules <textarea> (JSON) as
// groups and conditions, and writes every change back to it. The textarea stays the source
// of truth and stays editable, so the page works without this file. Field, operator and
// value choices come from the catalogue the page hands over (campaigns/segments/fields.py).
(() => {
  "use strict";

  const LIST_OPS = ["in", "not_in"];
  let uid = 0;

  function nextId(prefix) {
    uid += 1;
    return `${prefix}-${uid}`;
  }

  function element(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (value !== undefined && value !== null) node.setAttribute(key, value);
    });
    children.forEach((child) => node.appendChild(child));
    return node;
  }

  function labelled(labelText, control, extraClass = "") {
    const id = nextId("sb");
    control.id = id;
    return element("div", { class: `sb-control ${extraClass}`.trim() }, [
      element("label", { for: id, text: labelText }),
      control,
    ]);
  }

  function select(options, value, multiple = false) {
    const node = element("select", multiple ? { multiple: "multiple", size: "3" } : {});
    options.forEach(([code, label]) => {
      const option = element("option", { value: String(code), text: label });
      const values = Array.isArray(value) ? value.map(String) : [String(value)];
      if (values.includes(String(code))) option.selected = true;
      node.appendChild(option);
    });
    return node;
  }

  function start() {
    const root = document.getElementById("segment-builder");
    const textarea = document.getElementById("id_rules");
    const catalogueNode = document.getElementById("segment-fields");
    const textNode = document.getElementById("segment-builder-text");
    if (!root || !textarea || !catalogueNode || !textNode) return;
    const catalogue = JSON.parse(catalogueNode.textContent);
    const text = JSON.parse(textNode.textContent);
    const readonly = root.dataset.readonly === "true" || textarea.readOnly;
    const fields = Object.fromEntries(catalogue.fields.map((f) => [f.name, f]));
    let state = null;

    function read() {
      try {
        const parsed = JSON.parse(textarea.value);
        if (!parsed || typeof parsed !== "object" || !parsed.rule || !Array.isArray(parsed.rule.rules)) {
          return null;
        }
        return parsed;
      } catch (error) {
        return null;
      }
    }

    function write() {
      textarea.value = JSON.stringify(state, null, 1);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function defaultValue(field, op) {
      if (op === "is_empty") return undefined;
      const first = field.choices.length ? field.choices[0][0] : "";
      let single;
      if (field.type === "int") single = 0;
      else if (field.type === "decimal") single = "0";
      else if (field.type === "bool") single = true;
      else if (field.type === "month") single = "this";
      else if (field.type === "date") single = new Date().toISOString().slice(0, 10);
      else if (field.type === "store" || field.type === "segment") single = first === "" ? 0 : Number(first);
      else single = first;
      if (LIST_OPS.includes(op)) return single === "" ? [] : [single];
      if (op === "between") return [single, single];
      return single;
    }

    function newCondition(name) {
      const field = fields[name];
      const op = field.ops[0];
      const condition = { field: name, op };
      const value = defaultValue(field, op);
      if (value !== undefined) condition.value = value;
      if (field.days === "required") condition.days = 30;
      return condition;
    }

    function parseScalar(field, raw) {
      if (field.type === "int" || field.type === "store" || field.type === "segment") {
        return raw === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
      }
      if (field.type === "bool") return raw === "true";
      if (field.type === "month") return raw === "this" || raw === "next" ? raw : Number(raw);
      return raw;
    }

    function scalarInput(field, value) {
      if (field.type === "bool") {
        return select([["true", text.yes], ["false", text.no]], String(value));
      }
      if (field.type === "month") {
        const months = [["this", text.this_month], ["next", text.next_month]];
        for (let m = 1; m <= 12; m += 1) months.push([String(m), String(m)]);
        return select(months, value);
      }
      if (field.choices.length && field.type !== "text") return select(field.choices, value);
      const types = { int: "number", decimal: "number", date: "date" };
      const input = element("input", { type: types[field.type] || "text", value: value ?? "" });
      if (field.type === "int") input.setAttribute("min", "0");
      if (field.type === "decimal") input.setAttribute("step", "0.01");
      return input;
    }

    function valueControls(condition, field, onChange) {
      const op = condition.op;
      if (op === "is_empty") return [];
      if (LIST_OPS.includes(op)) {
        if (field.choices.length && field.type !== "text") {
          const control = select(field.choices, condition.value || [], true);
          control.addEventListener("change", () => {
            onChange(Array.from(control.selectedOptions).map((o) => parseScalar(field, o.value)));
          });
          return [labelled(text.value, control, "sb-value")];
        }
        const input = element("input", {
          type: "text",
          value: (condition.value || []).join(", "),
          "aria-describedby": undefined,
        });
        input.addEventListener("input", () => {
          const items = input.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean);
          onChange(items.map((item) => parseScalar(field, item)));
        });
        const wrap = labelled(text.value, input, "sb-value");
        wrap.appendChild(element("span", { class: "helptext", text: text.list_help }));
        return [wrap];
      }
      if (op === "between") {
        const pair = Array.isArray(condition.value) ? condition.value.slice() : ["", ""];
        return [0, 1].map((index) => {
          const control = scalarInput(field, pair[index]);
          const handler = () => {
            pair[index] = parseScalar(field, control.value);
            onChange(pair.slice());
          };
          control.addEventListener("input", handler);
          control.addEventListener("change", handler);
          return labelled(index === 0 ? text.from : text.to, control, "sb-value");
        });
      }
      const control = scalarInput(field, condition.value);
      const handler = () => onChange(parseScalar(field, control.value));
      control.addEventListener("input", handler);
      control.addEventListener("change", handler);
      return [labelled(text.value, control, "sb-value")];
    }

    function drawCondition(condition, parent, index) {
      const field = fields[condition.field];
      const row = element("div", { class: "sb-condition", role: "group" });
      if (!field) {
        row.appendChild(element("p", { class: "field-error", text: condition.field }));
      } else {
        const fieldSelect = select(catalogue.fields.map((f) => [f.name, f.label]), condition.field);
        fieldSelect.disabled = readonly;
        fieldSelect.addEventListener("change", () => {
          parent.rules[index] = newCondition(fieldSelect.value);
          write();
          draw();
        });
        row.appendChild(labelled(text.field, fieldSelect, "sb-field"));
        const opSelect = select(field.ops.map((op) => [op, catalogue.operators[op]]), condition.op);
        opSelect.disabled = readonly;
        opSelect.addEventListener("change", () => {
          const was = condition.op;
          condition.op = opSelect.value;
          const shape = (op) => (LIST_OPS.includes(op) ? "list" : op === "between" ? "pair" : op === "is_empty" ? "none" : "one");
          if (shape(was) !== shape(condition.op)) {
            const value = defaultValue(field, condition.op);
            if (value === undefined) delete condition.value;
            else condition.value = value;
          }
          write();
          draw();
        });
        row.appendChild(labelled(text.operator, opSelect, "sb-op"));
        valueControls(condition, field, (value) => {
          condition.value = value;
          write();
        }).forEach((control) => row.appendChild(control));
        if (field.days) {
          const days = element("input", { type: "number", min: "1", value: condition.days ?? "" });
          days.addEventListener("input", () => {
            if (days.value === "" && field.days === "optional") delete condition.days;
            else condition.days = Number(days.value);
            write();
          });
          const label = field.name === "points_expiring" ? text.days_expiring
            : field.days === "optional" ? text.days_optional : text.days;
          row.appendChild(labelled(label, days, "sb-days"));
        }
      }
      if (!readonly) {
        const remove = element("button", { type: "button", class: "secondary sb-remove", text: text.remove });
        remove.addEventListener("click", () => {
          parent.rules.splice(index, 1);
          write();
          draw();
        });
        row.appendChild(remove);
      }
      row.querySelectorAll("input, select").forEach((control) => { control.disabled = readonly; });
      return row;
    }

    function drawGroup(group, parent, index) {
      const box = element("div", { class: `sb-group sb-group-${group.group}`, role: "group" });
      const kind = select(["and", "or", "not"].map((g) => [g, text[g]]), group.group);
      kind.disabled = readonly;
      kind.addEventListener("change", () => {
        group.group = kind.value;
        write();
        draw();
      });
      const head = element("div", { class: "sb-group-head" }, [labelled(text.group, kind, "sb-kind")]);
      if (parent && !readonly) {
        const remove = element("button", { type: "button", class: "secondary sb-remove", text: text.remove_group });
        remove.addEventListener("click", () => {
          parent.rules.splice(index, 1);
          write();
          draw();
        });
        head.appendChild(remove);
      }
      box.appendChild(head);
      if (!group.rules.length) box.appendChild(element("p", { class: "muted", text: text.empty }));
      group.rules.forEach((child, i) => {
        box.appendChild(child && child.group ? drawGroup(child, group, i) : drawCondition(child, group, i));
      });
      if (!readonly) {
        const addCondition = element("button", { type: "button", class: "sb-add-condition", text: text.add_condition });
        addCondition.addEventListener("click", () => {
          group.rules.push(newCondition(catalogue.fields[0].name));
          write();
          draw();
        });
        const addGroup = element("button", { type: "button", class: "secondary sb-add-group", text: text.add_group });
        addGroup.addEventListener("click", () => {
          group.rules.push({ group: "or", rules: [newCondition(catalogue.fields[0].name)] });
          write();
          draw();
        });
        box.appendChild(element("div", { class: "actions" }, [addCondition, addGroup]));
      }
      return box;
    }

    function draw() {
      root.replaceChildren();
      if (!state) {
        root.appendChild(element("p", { class: "message message-warning", role: "status", text: text.bad_json }));
        return;
      }
      root.appendChild(drawGroup(state.rule, null, 0));
    }

    // Typing in the textarea itself redraws the tree once the JSON parses again.
    textarea.addEventListener("input", (event) => {
      if (!event.isTrusted) return;
      state = read();
      draw();
    });
    state = read();
    draw();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
