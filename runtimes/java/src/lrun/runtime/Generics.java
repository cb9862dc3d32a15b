package lrun.runtime;

import java.lang.reflect.GenericArrayType;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.HashMap;
import java.util.Map;

/** The type arguments a class gives an interface it implements, through its superclasses. */
final class Generics {
    private Generics() {}

    /** The actual type arguments of {@code iface} as {@code cls} implements it; null if raw. */
    static Type[] find(Class<?> cls, Class<?> iface) {
        return find(cls, iface, new HashMap<>());
    }

    private static Type[] find(Class<?> cls, Class<?> iface, Map<TypeVariable<?>, Type> bindings) {
        Type superclass = cls.getGenericSuperclass();
        Type[] interfaces = cls.getGenericInterfaces();
        Type[] all = new Type[interfaces.length + (superclass == null ? 0 : 1)];
        System.arraycopy(interfaces, 0, all, 0, interfaces.length);
        if (superclass != null) {
            all[interfaces.length] = superclass;
        }
        for (Type type : all) {
            if (type instanceof ParameterizedType pt && pt.getRawType() instanceof Class<?> raw) {
                Type[] args = pt.getActualTypeArguments().clone();
                for (int i = 0; i < args.length; i++) {
                    if (args[i] instanceof TypeVariable<?> v && bindings.containsKey(v)) {
                        args[i] = bindings.get(v);
                    }
                }
                if (raw == iface) {
                    return args;
                }
                if (iface.isAssignableFrom(raw)) {
                    Map<TypeVariable<?>, Type> next = new HashMap<>();
                    TypeVariable<?>[] params = raw.getTypeParameters();
                    for (int i = 0; i < params.length && i < args.length; i++) {
                        next.put(params[i], args[i]);
                    }
                    Type[] found = find(raw, iface, next);
                    if (found != null) {
                        return found;
                    }
                }
            } else if (type instanceof Class<?> raw && iface.isAssignableFrom(raw) && raw != iface) {
                Type[] found = find(raw, iface, new HashMap<>());
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    static Class<?> raw(Type type) {
        if (type instanceof Class<?> c) {
            return c;
        }
        if (type instanceof ParameterizedType p) {
            return raw(p.getRawType());
        }
        if (type instanceof GenericArrayType a) {
            return java.lang.reflect.Array.newInstance(raw(a.getGenericComponentType()), 0).getClass();
        }
        return Object.class;
    }
}
