//! Plain HTML for the console and the login page: one layout, escaping for every value,
//! no JavaScript.

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{t} · Kite sandbox</title>\
         <style>body{{font-family:sans-serif;max-width:44em;margin:2em auto;padding:0 1em;line-height:1.5}}\
         label{{display:block;margin-top:.8em}}input,select,textarea{{font-size:1em;width:100%;max-width:28em}}\
         .error{{color:#b00020}}.note{{color:#555}}code{{background:#f3f3f3;padding:.1em .3em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         button{{font-size:1em;margin-top:1em;margin-right:.5em}}</style></head>\n\
         <body><p class=\"note\">Kite sandbox: an offline emulation, not Zerodha.</p>\n<h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title),
    )
}

/// A paragraph with an error message, or nothing.
pub fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default()
}

/// A labelled text input.
pub fn input(label: &str, name: &str, kind: &str, value: &str) -> String {
    format!(
        "<label for=\"{n}\">{l}</label><input id=\"{n}\" name=\"{n}\" type=\"{k}\" value=\"{v}\" autocomplete=\"off\">",
        l = esc(label),
        n = esc(name),
        k = esc(kind),
        v = esc(value),
    )
}

/// A hidden input.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(page("<t>", "").contains("&lt;t&gt;"));
        assert!(hidden("a", "\"><script>").contains("&quot;&gt;&lt;script&gt;"));
    }
}
